"""Date and time formats of the pages people read (the admin and the console), by language:
Django's own for English print "Dec. 5, 2026, 5:19 p.m.", to the minute, where an operator
comparing a run's start and end needs the second."""
