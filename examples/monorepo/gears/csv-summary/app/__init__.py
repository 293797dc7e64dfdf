"""csv-summary: descriptive statistics for the numeric columns of a CSV file."""
