"""The data asset map (GOV-7): who produces, consumes and answers for each kind of data."""
