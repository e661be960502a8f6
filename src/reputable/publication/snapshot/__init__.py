"""The immutable, memory-mapped image of the listings that the DNS server answers from."""
