//! Cron scaler (placeholder; being written).
