"""STAGE 2: reputation — decayed scores per subject and cause, summarised as 0-100 and a bucket."""
