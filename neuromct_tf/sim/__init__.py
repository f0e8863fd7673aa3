"""Reference detector-response simulation of a JUNO-like liquid-scintillator detector."""
