"""The LGWAN link between the J-LIS centre and the municipalities' certificate servers."""
