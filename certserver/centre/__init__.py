"""The J-LIS centre (証明書交付センター): the kiosk API's transactions, and its link to the
municipalities' certificate servers. It holds no personal data."""
