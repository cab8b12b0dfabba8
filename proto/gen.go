package proto

//go:generate go run ./internal/gen -schema schema/neo-v5.schema -out zcatalog.go
