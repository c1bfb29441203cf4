import IOVMCommands

/// The `iovm` executable: all the work lives in IOVMCommands.
@main
struct Entrypoint {
    static func main() {
        IOVMCommand.run()
    }
}
