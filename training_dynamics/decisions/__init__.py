"""Which labels are wrong: rankings and the decision rules on top of them."""
