"""Demo data of the emulator: synthetic municipalities, residents, 戸籍 and cards that
exercise every rule of the service (`certserver init --demo`). Every person is invented."""
