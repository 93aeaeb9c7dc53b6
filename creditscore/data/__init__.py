"""Data: the declared Kaggle schema, reading the raw files (and their quirks), cleaning and the hold-out split."""
