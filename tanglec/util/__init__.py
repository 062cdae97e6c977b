"""Small standard-library helpers shared by the commands."""
