"""The exchanges a trader talks to, each behind the Venue interface of trading/models.py:

    ccxt_venue.py + ccxt_faults.py   a real exchange through ccxt (the only ccxt code): calls,
                                     and every vendor error translated into trading/errors.py
    paper.py (+ paper_orders,        the offline paper exchange (and DRY_RUN's simulated
    paper_engine, paper_market,      account on live prices): fills, resting orders, its own
    paper_limits, paper_state)       rate limit and clock, kept on disk
    market_sim.py                    the synthetic markets the offline paper exchange trades
"""
