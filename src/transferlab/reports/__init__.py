"""Pictures and self-contained HTML reports that every task writes into its run directory."""
