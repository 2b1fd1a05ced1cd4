"""Framework integrations, each driven through its real framework by a scripted model."""
