"""Operations: key rotation, backup and restore, and the data-retention job."""
