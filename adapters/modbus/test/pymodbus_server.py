"""An independent Modbus peer for homeflex's tests: Debian's python3-pymodbus (3.0) serving register
images, on TCP 127.0.0.1 (a free port unless --port, printed as "ready <port>") or as an RTU server on a serial
device ("ready"). Units not in the image never answer, like absent devices on a bus.

    /usr/bin/python3 pymodbus_server.py --image image.json (--tcp | --rtu /dev/pts/3 --baud 9600)

image.json: {"<unit>": {"holding": {"<address>": <word>, ...}, "input": {...}}, ...}, 0-based addresses.
"""
import argparse
import asyncio
import json
import logging
import signal

from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext, ModbusSparseDataBlock
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.server.async_io import ModbusSerialServer, ModbusTcpServer


def contexts(image):
    slaves = {}
    for unit, regs in image.items():
        holding = {int(a): v for a, v in regs.get("holding", {}).items()}
        inputs = {int(a): v for a, v in regs.get("input", {}).items()}
        # sparse blocks answer ILLEGAL DATA ADDRESS outside the image, as inverters do;
        # zero_mode keeps protocol addresses as they are (no +1 shift)
        slaves[int(unit)] = ModbusSlaveContext(
            hr=ModbusSparseDataBlock(holding or {0: 0}),
            ir=ModbusSparseDataBlock(inputs or {0: 0}),
            zero_mode=True,
        )
    return ModbusServerContext(slaves=slaves, single=False)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", required=True)
    parser.add_argument("--tcp", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rtu")
    parser.add_argument("--baud", type=int, default=9600)
    args = parser.parse_args()
    with open(args.image, encoding="utf8") as f:
        context = contexts(json.load(f))
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    if args.tcp:
        server = ModbusTcpServer(context, address=("127.0.0.1", args.port), allow_reuse_address=True, ignore_missing_slaves=True)
        task = asyncio.create_task(server.serve_forever())
        await server.serving
        print(f"ready {server.server.sockets[0].getsockname()[1]}", flush=True)
    else:
        server = ModbusSerialServer(context, ModbusRtuFramer, port=args.rtu, baudrate=args.baud, ignore_missing_slaves=True)
        await server.start()
        task = asyncio.create_task(server.serve_forever())
        print("ready", flush=True)
    await stop
    task.cancel()
    await server.shutdown()


if __name__ == "__main__":
    logging.basicConfig(level=logging.CRITICAL)
    asyncio.run(main())
