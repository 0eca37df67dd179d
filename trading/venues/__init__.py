"""The exchanges a trader talks to, each behind the Venue interface of trading/models.py:

    ccxt_venue.py (+ ccxt_exchanges,  a real exchange through ccxt (the only ccxt code): calls,
    ccxt_parse, ccxt_faults)          per-exchange quirks, ccxt's answers read into our
                                      dataclasses, every vendor error translated into
                                      trading/errors.py
    paper.py (+ paper_orders,         the offline paper exchange (and DRY_RUN's simulated
    paper_terms, paper_engine,        account on live prices): fills, resting orders, its own
    paper_market, paper_limits,       rate limit and clock, kept on disk
    paper_state)
    market_sim.py (+ price_path)      the synthetic markets the offline paper exchange trades
    ccxt_history.py                   an exchange's public candle history, for the download
"""
