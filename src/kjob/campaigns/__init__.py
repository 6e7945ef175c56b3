"""Campaigns (kjob sweep): the campaign file, its plan and estimate, lanes, and the sweep itself."""
