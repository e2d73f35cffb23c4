"""The token classification kind (NER): word by word."""
