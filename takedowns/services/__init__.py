"""Every write of the takedowns app: requests (intake and workflow) and scoping."""
