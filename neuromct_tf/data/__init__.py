"""Training data: histograms of MC grid files in the spec's binning."""
