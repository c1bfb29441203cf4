// IOVMMonitor: being written (efficiency sampling and reports, issue 5).
