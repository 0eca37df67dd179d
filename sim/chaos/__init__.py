"""The chaos soak: the whole bot on the paper exchange in simulated time, under random faults,
process deaths and owner commands, judged by a referee after every cycle.

    soak.py       one seed, cycle by cycle, and many seeds in processes (bench/chaos.py runs it)
    process.py    the bot's processes: built from the store, ended by a crash, a kill, a shutdown
    venue.py      the chaos venue: faults at the Venue interface, every order audited
    faults.py     the faults and the planner that throws them, cycle by cycle
    actors.py     a strategy that signals at random, the owner's commands, a user beside the bot
    referee.py    the Monitor: the invariants, with causes.py, books.py, alarms.py, observed.py,
                  logwatch.py (ChaosBug, Crash, the logs watched) and report.py (SeedReport)
"""
