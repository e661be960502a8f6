"""STAGE 3: listings — decisions with expiry and reasons, and the rules that guard them."""
