"""Split by concern: credentials (secrets, keys, kept log-ins), attempts (one browser attempt
and its screenshots, for the web kind and the web-actions API alike), web_actions (ad-hoc
action lists run through the API)."""
