"""Pure billing rules (money, tax, totals, terms, reminder schedules) shared by the API and the workflows.\n\nNothing here does I/O, so workflows can import it through the sandbox."""
