"""Figures of neuromct-tf, drawn with matplotlib's Agg backend into image files."""
