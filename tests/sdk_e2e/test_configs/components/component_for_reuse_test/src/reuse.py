print("the same code, uploaded once")
