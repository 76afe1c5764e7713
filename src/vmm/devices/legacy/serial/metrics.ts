/** Counters of the UART (Firecracker's `uart` metrics group). */
export interface SerialMetrics {
  error_count: number;
  flush_count: number;
  missed_read_count: number;
  missed_write_count: number;
  read_count: number;
  write_count: number;
}

export function newSerialMetrics(): SerialMetrics {
  return { error_count: 0, flush_count: 0, missed_read_count: 0, missed_write_count: 0, read_count: 0, write_count: 0 };
}
