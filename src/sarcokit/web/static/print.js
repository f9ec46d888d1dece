// The printable report's print button (a file of its own: the clinic's policy allows no inline script).
document.getElementById("print-report")?.addEventListener("click", () => window.print());
