"""The conflict board: open and recently resolved conflicts as a web page and a JSON API,
served by the notifier on its metrics port (`state`: the data, `api`: the HTTP side)."""
