#!/usr/bin/python3
"""Modbus RTU slave for the collector/modbus tests, written for Debian's python3-pymodbus 3.0.x.

Usage: rtu_slave.py SERIAL_DEVICE IMAGE_JSON

IMAGE_JSON maps unit id -> table (holding, input, coil, discrete) -> protocol address -> value,
the register image the Go test also serves over TCP. Each table is a sparse block, so a read that
touches an address the image lacks gets exception 2 (illegal data address), as on a real device.
A unit id the image lacks gets no answer at all, as on a real RS-485 line.

The script prints "ready" on stdout once the serial port is open and then serves until killed.
"""

import asyncio
import json
import sys

from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext, ModbusSparseDataBlock
from pymodbus.server import StartAsyncSerialServer
from pymodbus.transaction import ModbusRtuFramer

TABLES = (("hr", "holding"), ("ir", "input"), ("co", "coil"), ("di", "discrete"))


def build_context(image):
    slaves = {}
    for unit, tables in image.items():
        blocks = {}
        for key, name in TABLES:
            values = {int(addr): int(v) for addr, v in tables.get(name, {}).items()}
            blocks[key] = ModbusSparseDataBlock(values)
        # zero_mode: the request's address is the block's address (pymodbus otherwise adds 1).
        slaves[int(unit)] = ModbusSlaveContext(zero_mode=True, **blocks)
    return ModbusServerContext(slaves=slaves, single=False)


async def serve(device, context):
    server = await StartAsyncSerialServer(
        context=context,
        framer=ModbusRtuFramer,
        port=device,
        baudrate=9600,
        bytesize=8,
        parity="N",
        stopbits=1,
        ignore_missing_slaves=True,
        defer_start=True,
    )
    await server.start()
    if server.transport is None:
        raise SystemExit(f"could not open {device}")
    print("ready", flush=True)
    await server.serve_forever()


def main():
    device, image_path = sys.argv[1], sys.argv[2]
    with open(image_path, encoding="utf-8") as f:
        image = json.load(f)
    asyncio.run(serve(device, build_context(image)))


if __name__ == "__main__":
    main()
