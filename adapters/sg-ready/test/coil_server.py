"""An independent Modbus peer for the SG-Ready tests: Debian's python3-pymodbus (3.0) serving unit 1
with coils 0-7 (the relay outputs of an I/O module) and holding register 100 (a tank temperature in
0.1 °C), on TCP 127.0.0.1 at a free port (printed as "ready <port>"). Every coil write is printed
as "coil <address> <0|1>", so the test sees what reached the wire.

    /usr/bin/python3 coil_server.py [--temp 523]
"""
import argparse
import asyncio
import logging
import signal

from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext, ModbusSparseDataBlock
from pymodbus.server.async_io import ModbusTcpServer


class LoggingContext(ModbusSlaveContext):
    def setValues(self, fc_as_hex, address, values):  # noqa: N802 (pymodbus API)
        if fc_as_hex in (5, 15):
            for i, v in enumerate(values):
                print(f"coil {address + i} {1 if v else 0}", flush=True)
        return super().setValues(fc_as_hex, address, values)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--temp", type=int, default=523)
    args = parser.parse_args()
    unit = LoggingContext(
        co=ModbusSparseDataBlock({i: 0 for i in range(8)}),
        hr=ModbusSparseDataBlock({100: args.temp}),
        zero_mode=True,
    )
    context = ModbusServerContext(slaves={1: unit}, single=False)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    server = ModbusTcpServer(context, address=("127.0.0.1", 0), allow_reuse_address=True, ignore_missing_slaves=True)
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    print(f"ready {server.server.sockets[0].getsockname()[1]}", flush=True)
    await stop
    task.cancel()
    await server.shutdown()


if __name__ == "__main__":
    logging.basicConfig(level=logging.CRITICAL)
    asyncio.run(main())
