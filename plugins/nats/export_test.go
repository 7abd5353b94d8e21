package nats

// PartitionOf exposes the partition function to the fleet tests.
var PartitionOf = partitionOf
