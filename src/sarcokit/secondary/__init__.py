"""Secondary sarcopenia: the diseases that cause it and the disease-specific tools beside it."""
