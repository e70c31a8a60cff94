"""Results to pandas dataframes, plots and reports."""
