//! HPA replica calculator (placeholder; being written).
