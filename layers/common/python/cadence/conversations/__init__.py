"""Two-way conversations (issue 12): what a customer's reply says and what it asks of us."""
