"""Review: the review page (templates under web/) and corrections applied to a dataset."""
