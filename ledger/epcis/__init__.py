"""GS1 EPCIS 2.0 capture and query in the reference ledger (issue 14).

``convert`` reads an ObjectEvent as a movement (no I/O), ``store`` keeps
captured events and capture jobs beside the journal (SQL both backends share),
``routes`` is the HTTP face: ``POST /epcis/capture``, ``GET /epcis/capture/{id}``,
``GET /epcis/events``. Nothing is re-exported here, so the store can import
``store`` without pulling in the web layer.
"""
