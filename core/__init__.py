"""The platform kernel: what every app shares (who may do what, ...). It imports no app."""
