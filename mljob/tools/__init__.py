"""What runs on a person's machine, never in Azure: the `mljob` command, `mljob serve`, share uploads, synthetic data.

`.funcignore` leaves this package out of the function app.
"""
