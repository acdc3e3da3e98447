#!/usr/bin/env python3
"""The Python course's producer/consumer, for comparison with lesson 10: one
producer process puts ITEMS integers into a multiprocessing.Queue of
CAPACITY, one consumer process takes them. Prints items per second.

    python3 mp_queue.py [ITEMS] [CAPACITY]
"""
import multiprocessing
import sys
import time


def produce(queue, items):
    for number in range(1, items + 1):
        queue.put(number)
    queue.put(None)


def consume(queue, total):
    result = 0
    while (number := queue.get()) is not None:
        result += number
    total.value = result


def main():
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    capacity = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    queue = multiprocessing.Queue(capacity)
    total = multiprocessing.Value("q", 0)
    started = time.perf_counter()
    consumer = multiprocessing.Process(target=consume, args=(queue, total))
    producer = multiprocessing.Process(target=produce, args=(queue, items))
    consumer.start()
    producer.start()
    producer.join()
    consumer.join()
    elapsed = time.perf_counter() - started
    if total.value != items * (items + 1) // 2:
        sys.exit(f"wrong sum {total.value}")
    print(f"{items / elapsed:.0f}")


if __name__ == "__main__":
    main()
