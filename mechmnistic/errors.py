"""The one base class for errors caused by input (files, names, arguments).

The CLI prints these as one clear line and the app shows them as a message;
anything else is a bug and keeps its traceback.
"""


class MechMNISTicError(Exception):
    """Bad input or unusable files; the message says what and where."""
