"""The one error type of the billing rules: a message a user can act on, naming the offending field."""


class MoneyError(ValueError):
    pass
