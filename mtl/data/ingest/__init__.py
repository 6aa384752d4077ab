"""Getting data in: the generated datasets (synthetic.py, the impression log; supply_chain.py, a
daily inventory panel), the dataset adapters that read the user's files of a known layout
(adapters/), and the ``generate`` stage's driver that writes either to data/01_raw and
fingerprints what it read (sources.py)."""
