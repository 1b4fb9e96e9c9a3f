"""`sam local` for real: the functions from `sam build` in Lambda containers (Docker), against
DynamoDB Local with seeded data; `make sam-local` serves it, `make test-sam` tests it."""
