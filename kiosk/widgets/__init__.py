"""Widgets of the kiosk screens: PIN keypad, card status, idle countdown."""
