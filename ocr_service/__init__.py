"""Scanning engine: image → barcodes, GS1 data, label text and fields."""
