"""be.ENERGISED price structures: parsing, exact local cost calculation, pricing API client."""
