"""The kiosk: Textual UI, headless driver and load generator over one flow state machine."""
